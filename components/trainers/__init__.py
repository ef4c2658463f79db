"""The model builders and the trainer modules (`run_fn`) of the pipeline."""
