"""A file or query in, upload bytes out: sources, warehouse, pipeline, staging, encode, report."""
