"""Stages: functions over images and batches of samples. They know nothing of files or processes."""
