"""The re-evaluation job: settings and store-mapping changes applied to the records already stored."""
