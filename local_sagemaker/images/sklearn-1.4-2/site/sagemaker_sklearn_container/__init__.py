"""Stand-in for the image's own package (not published on PyPI), built on the same toolkits."""
