"""Real local services (S3, Azure Blob, SMTP, REST, Dask) for tdm's integration tests."""
