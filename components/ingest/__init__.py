"""CIFAR-10 ingestion: reading the sources (`sources`) and the custom
ExampleGen (`component`, `executor`) that the pipeline builds on them.

Imported by `pipeline.create` and the tests; imports nothing itself, so
`sources` stays usable without TensorFlow.
"""
