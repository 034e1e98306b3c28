"""Users' data files: one reader for JSONL, Parquet and `datasets` folders (`readers`), prompt files
(`prompts_io`) and preference interchange with TRL, HH-RLHF and UltraFeedback (`interchange`)."""
