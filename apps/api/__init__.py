"""The JSON API's shared plumbing: the one error shape (used by the ops endpoints too), the body
parser, cursor pagination and the OpenAPI helpers. Imports only the common core."""
