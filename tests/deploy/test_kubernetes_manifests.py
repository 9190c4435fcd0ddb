"""deploy/k8s/: schema-valid offline, and wired the way the service's probes, shutdown and
configuration need."""

import subprocess

import pytest

from tests import yaml_files

from . import PROJECT_ROOT, gunicorn_graceful_timeout, settings_variables, tool_path

pytestmark = pytest.mark.backend_independent

MANIFEST_DIRECTORY = PROJECT_ROOT / "deploy" / "k8s"
# The schemas kubernetes-validate bundles for this version are used; nothing is downloaded.
KUBERNETES_VERSION = "1.37.0"


def manifest_files():
    files = sorted(MANIFEST_DIRECTORY.glob("*.yaml"))
    assert files, f"no manifests in {MANIFEST_DIRECTORY}"
    return files


def resources():
    return [
        document for path in manifest_files() for document in yaml_files.load_all(path) if document
    ]


def resource(kind, name=None):
    found = [
        document
        for document in resources()
        if document["kind"] == kind and name in {None, document["metadata"]["name"]}
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def service_configmap():
    """The service's configuration (not the Prometheus Adapter's rules)."""
    return resource("ConfigMap", deployment()["metadata"]["name"])


def adapter_rules():
    configmap = resource("ConfigMap", "orders-service-adapter-rules")
    return yaml_files.load_text(configmap["data"]["config.yaml"])["rules"]


def deployment():
    return resource("Deployment")


def job(component):
    found = [
        document
        for document in resources()
        if document["kind"] == "Job"
        and document["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    assert len(found) == 1, f"expected one {component} Job, found {len(found)}"
    return found[0]


def migration_job():
    return job("migrate")


def scaling_audit_job():
    return job("scaling-audit")


def web_container():
    containers = deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def prune_silk_job():
    """The Job that the silk pruning CronJob creates (its spec.template is the pod's)."""
    return resource("CronJob")["spec"]["jobTemplate"]


def workload(kind):
    return {
        "Deployment": deployment,
        "Job": migration_job,
        "AuditJob": scaling_audit_job,
        "CronJob": prune_silk_job,
    }[kind]()


def only_container(kind):
    containers = workload(kind)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def pre_stop_sleep_seconds():
    command = web_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] in {"sleep", "/bin/sleep"}, command
    return int(command[1])


WORKLOADS = ["Deployment", "Job", "AuditJob", "CronJob"]


def test_manifests_pass_strict_kubernetes_validation():
    completed = subprocess.run(
        [
            tool_path("kubernetes-validate"),
            "--kubernetes-version",
            KUBERNETES_VERSION,
            "--strict",
            *map(str, manifest_files()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    # An unknown kind or apiVersion is only a warning for the tool, and is a mistake here.
    assert "WARN" not in output, output


def test_manifests_set_no_namespace():
    for document in resources():
        assert "namespace" not in document["metadata"], document["metadata"]["name"]


def test_deployment_leaves_the_pod_count_to_the_autoscaler():
    assert "replicas" not in deployment()["spec"]


def test_readiness_probe_checks_ready():
    probe = web_container()["readinessProbe"]["httpGet"]
    assert probe["path"] == "/ready"


def test_liveness_probe_checks_health():
    probe = web_container()["livenessProbe"]["httpGet"]
    assert probe["path"] == "/health"


def test_startup_probe_checks_liveness_not_dependencies():
    probe = web_container()["startupProbe"]["httpGet"]
    assert probe["path"] == "/health"


def test_probes_target_the_served_port():
    port_names = {port["name"] for port in web_container()["ports"]}
    port_numbers = {port["containerPort"] for port in web_container()["ports"]}
    assert 8000 in port_numbers
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = web_container()[probe]["httpGet"]["port"]
        assert port in port_names | port_numbers, f"{probe} targets {port}"


def test_readiness_timeout_exceeds_the_health_check_deadline():
    deadline = float(service_configmap()["data"]["HEALTH_CHECK_TIMEOUT_SECONDS"])
    assert web_container()["readinessProbe"]["timeoutSeconds"] > deadline


def test_termination_grace_outlasts_pre_stop_sleep_and_graceful_shutdown():
    grace = deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pre_stop_sleep_seconds() > 0
    assert grace > pre_stop_sleep_seconds() + gunicorn_graceful_timeout()


@pytest.mark.parametrize("kind", WORKLOADS)
def test_pods_run_as_non_root_without_privilege_escalation(kind):
    pod_spec = workload(kind)["spec"]["template"]["spec"]
    container_context = only_container(kind)["securityContext"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    assert container_context["allowPrivilegeEscalation"] is False
    assert container_context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("kind", WORKLOADS)
def test_root_filesystem_is_read_only_with_a_writable_tmp(kind):
    pod_spec = workload(kind)["spec"]["template"]["spec"]
    container = only_container(kind)
    empty_dirs = {volume["name"] for volume in pod_spec["volumes"] if "emptyDir" in volume}
    tmp_mounts = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert len(tmp_mounts) == 1
    assert tmp_mounts[0]["name"] in empty_dirs
    assert not tmp_mounts[0].get("readOnly", False)


def test_gunicorn_heartbeat_directory_is_in_memory():
    pod_spec = deployment()["spec"]["template"]["spec"]
    shm_mounts = [m for m in web_container()["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    assert len(shm_mounts) == 1
    volume = next(v for v in pod_spec["volumes"] if v["name"] == shm_mounts[0]["name"])
    assert volume["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("kind", WORKLOADS)
def test_containers_request_cpu_and_memory_and_limit_memory(kind):
    resources_ = only_container(kind)["resources"]
    assert {"cpu", "memory"} <= set(resources_["requests"])
    assert "memory" in resources_["limits"]


@pytest.mark.parametrize("kind", WORKLOADS)
def test_environment_comes_from_the_configmap_and_the_secret(kind):
    sources = only_container(kind)["envFrom"]
    configmaps = [source["configMapRef"]["name"] for source in sources if "configMapRef" in source]
    secrets = [source["secretRef"]["name"] for source in sources if "secretRef" in source]
    assert configmaps == [service_configmap()["metadata"]["name"]]
    assert secrets == [resource("Secret")["metadata"]["name"]]


def test_configuration_keys_are_variables_that_settings_reads():
    keys = set(service_configmap()["data"]) | set(resource("Secret")["stringData"])
    for container in (web_container(), only_container("Job"), only_container("AuditJob")):
        keys |= {variable["name"] for variable in container.get("env", [])}
    unknown = keys - settings_variables()
    assert not unknown, f"project/settings.py never reads {sorted(unknown)}"


def test_configmap_selects_production_mode():
    assert service_configmap()["data"]["DJANGO_ENV"] == "production"


def test_secret_example_holds_only_marked_placeholders():
    secret = resource("Secret")
    assert "data" not in secret, "use stringData so the example is readable"
    assert secret["stringData"]
    for key, value in secret["stringData"].items():
        assert value == "" or "REPLACE_ME" in value, f"{key} looks like a real value"


def test_pods_are_annotated_for_prometheus_to_scrape_metrics():
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) in {
        port["containerPort"] for port in web_container()["ports"]
    }


def test_deployment_selector_matches_its_pods():
    spec = deployment()["spec"]
    assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])


@pytest.mark.parametrize(
    ("kind", "selector_path"),
    [
        ("Service", ("spec", "selector")),
        ("PodDisruptionBudget", ("spec", "selector", "matchLabels")),
    ],
)
def test_selects_web_pods_and_not_job_pods(kind, selector_path):
    selector = resource(kind)
    for key in selector_path:
        selector = selector[key]
    assert selects(selector, deployment()["spec"]["template"]["metadata"]["labels"])
    for job_ in (migration_job(), scaling_audit_job(), prune_silk_job()):
        assert not selects(selector, job_["spec"]["template"]["metadata"]["labels"])


def test_service_targets_the_web_container_port():
    port_names = {port["name"] for port in web_container()["ports"]}
    for port in resource("Service")["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_pod_disruption_budget_keeps_a_web_pod_running():
    spec = resource("PodDisruptionBudget")["spec"]
    if "maxUnavailable" in spec:
        assert spec["maxUnavailable"] < resource("HorizontalPodAutoscaler")["spec"]["minReplicas"]
    else:
        assert spec["minAvailable"] >= 1


def test_autoscaler_scales_the_deployment_from_its_replica_count():
    autoscaler = resource("HorizontalPodAutoscaler")
    spec = autoscaler["spec"]
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert spec["scaleTargetRef"]["kind"] == "Deployment"
    assert spec["scaleTargetRef"]["name"] == deployment()["metadata"]["name"]
    assert spec["minReplicas"] >= 2
    assert spec["maxReplicas"] > spec["minReplicas"]


def test_autoscaler_scales_on_requests_in_flight_per_pod_as_well_as_cpu():
    metrics = resource("HorizontalPodAutoscaler")["spec"]["metrics"]
    kinds = {metric["type"]: metric for metric in metrics}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    assert kinds["Pods"]["pods"]["metric"]["name"] == "orders_requests_in_flight"
    assert kinds["Pods"]["pods"]["target"]["type"] == "AverageValue"


def test_prometheus_adapter_rule_serves_the_autoscaler_metric_per_pod():
    wanted = resource("HorizontalPodAutoscaler")["spec"]["metrics"]
    names = {metric["pods"]["metric"]["name"] for metric in wanted if metric["type"] == "Pods"}
    served = {rule["name"]["as"]: rule for rule in adapter_rules()}
    assert names <= set(served)
    for name in names:
        overrides = served[name]["resources"]["overrides"]
        assert overrides["pod"] == {"resource": "pod"}
        assert overrides["namespace"] == {"resource": "namespace"}


def test_web_container_does_not_run_migrations():
    container = web_container()
    assert "migrate" not in " ".join(container.get("command", []) + container.get("args", []))


def test_migration_job_runs_migrate_once_with_the_release_image():
    job = migration_job()
    container = only_container("Job")
    assert "manage.py migrate" in " ".join(container["command"] + container.get("args", []))
    assert container["image"] == web_container()["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_silk_pruning_runs_on_a_schedule_never_overlapping_with_the_release_image():
    cron_job = resource("CronJob")
    container = only_container("CronJob")
    assert "manage.py prune_silk" in " ".join(container["command"] + container.get("args", []))
    assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"
    assert container["image"] == web_container()["image"]
    assert prune_silk_job()["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_scaling_audit_job_runs_the_gate_with_the_release_image_and_the_web_configuration():
    container = only_container("AuditJob")
    assert "manage.py scaling_audit" in " ".join(container["command"] + container.get("args", []))
    assert container["image"] == web_container()["image"]
    assert container["envFrom"] == web_container()["envFrom"]
    assert scaling_audit_job()["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_scaling_audit_job_budgets_for_the_autoscalers_maximum():
    variables = {item["name"]: item["value"] for item in only_container("AuditJob")["env"]}
    maximum = resource("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    assert int(variables["SCALING_INSTANCES"]) == maximum


def test_scaling_audit_job_is_never_retried():
    assert scaling_audit_job()["spec"]["backoffLimit"] == 0
