"""Where recordings come from: local folders and archives (`archive`), S3 and presigned URLs
(`s3`), and the download cache both share (`cache`). Imports only `rawcore.errors`,
`rawcore.progress` and `rawcore._core`."""
