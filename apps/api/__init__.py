"""The JSON API's shared plumbing: the one error shape (used by the ops endpoints too), the body
parser, cursor pagination, the OpenAPI helpers and what every API view adds to DRF's. Imports
only the common core."""
