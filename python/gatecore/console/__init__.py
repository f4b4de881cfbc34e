"""The console and developer portal under /ui/ (issue 22): server-rendered pages over the admin API."""
