"""The embedded backend: a moto server for SQS and DynamoDB in a process of its own
(`backend`), and the patches that make moto fast and faithful enough (`patches`). Only
`patches` touches moto's or werkzeug's internals."""
