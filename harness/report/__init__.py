"""The report stage: tables, statistics and plots from stored records. Imports neither torch nor Ray."""
