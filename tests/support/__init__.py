"""What the tests share that is not a fixture: servers they start (PostgreSQL, moto's S3,
a Ray head), the stack launcher's test-side helpers, tiny training settings and the
readers of Temporal histories. Imported as `support.<module>` (tests/ is on sys.path)."""
