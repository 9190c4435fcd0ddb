"""`manage.py inspect_queries <command> [arguments]`: a command as one unit of work, on demand."""

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.profiling.models import QueryFinding

pytestmark = pytest.mark.django_db

COUNT_GROUPS_ONE_BY_ONE = (
    "from django.contrib.auth.models import User\n"
    "print([user.groups.count() for user in User.objects.order_by('pk')])"
)
READ_ONE_ROW = "from django.contrib.auth.models import User\nprint(User.objects.count())"


@pytest.fixture(autouse=True)
def no_slow_query_findings(settings):
    """These tests count N+1 findings: on a loaded machine any query may pass the slow-query
    threshold and add a finding of another kind."""
    settings.LOG_SLOW_QUERY_MS = 60_000


@pytest.fixture(autouse=True)
def users_in_groups():
    groups = [Group.objects.create(name=f"group {number}") for number in range(2)]
    for number in range(6):
        User.objects.create(username=f"user{number}").groups.set(groups)


def inspect(*arguments):
    """(stdout, stderr) of `inspect_queries` with `arguments`."""
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("inspect_queries", *arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_the_commands_n_plus_one_is_listed_with_its_call_site_on_stderr():
    _, report = inspect("shell", "--command", COUNT_GROUPS_ONE_BY_ONE)

    assert "1 finding(s) in command shell" in report
    assert "n_plus_one: 6 x at " in report
    assert "auth_user_groups" in report


def test_the_commands_own_output_stays_on_stdout(capsys):
    output, report = inspect("shell", "--command", COUNT_GROUPS_ONE_BY_ONE)
    printed = capsys.readouterr().out  # what the shell's print() wrote

    assert str([2] * 6) in printed
    assert "finding(s)" not in output + printed
    assert str([2] * 6) not in report


def test_the_findings_are_saved_with_the_command_as_their_source():
    inspect("shell", "--command", COUNT_GROUPS_ONE_BY_ONE)
    inspect("shell", "--command", COUNT_GROUPS_ONE_BY_ONE)

    row = QueryFinding.objects.get()
    assert (row.kind, row.source, row.occurrences, row.max_repeats) == (
        "n_plus_one",
        "command shell",
        2,
        6,
    )


def test_a_command_without_findings_saves_nothing():
    _, report = inspect("shell", "--command", READ_ONE_ROW)

    assert "0 finding(s) in command shell" in report
    assert QueryFinding.objects.count() == 0


def test_the_threshold_option_sets_what_counts_as_an_n_plus_one():
    _, report = inspect("--threshold", "7", "shell", "--command", COUNT_GROUPS_ONE_BY_ONE)

    assert "0 finding(s)" in report
    assert QueryFinding.objects.count() == 0


def test_a_failing_command_still_reports_and_saves_what_it_ran_and_fails():
    failing = COUNT_GROUPS_ONE_BY_ONE + "\nraise LookupError('the command failed')"
    stderr = io.StringIO()

    with pytest.raises(LookupError):
        call_command("inspect_queries", "shell", "--command", failing, stderr=stderr)

    assert "n_plus_one: 6 x" in stderr.getvalue()
    assert QueryFinding.objects.get().source == "command shell"


def test_an_unknown_command_is_refused():
    with pytest.raises(CommandError, match="Unknown command: 'no_such_command'"):
        inspect("no_such_command")
