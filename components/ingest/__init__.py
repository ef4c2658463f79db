"""CIFAR-10 ingestion: reading the sources (`sources`, over `pickles`, `trees`
and `images`, with `errors.DataError`) and the custom ExampleGen (`component`,
`executor`) that the pipeline builds on them.

Imported by `pipeline.create` and the tests; imports nothing itself, so
`sources` stays usable without TensorFlow.
"""
