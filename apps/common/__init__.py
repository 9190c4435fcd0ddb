"""What every app of the service builds on: request context, redaction, SQL fingerprints, the ops
paths, the database helpers, buffered writes and the background flusher. Imports no other app."""
