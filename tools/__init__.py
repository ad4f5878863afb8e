"""Developer tools: tools/run_offline.py is the one-command offline run."""
