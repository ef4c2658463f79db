"""The pipeline's TFX components and their executors.

`ImageValidationReport` is reachable here because TFX's Kubeflow entrypoint
imports a custom artifact class from its type name read as `<module>.<Class>`
(`components.ImageValidationReport`); it is imported on first use, so that
`import components.<module>` stays free of TFX.
"""


def __getattr__(name: str):
  if name == 'ImageValidationReport':
    from components.image_validation import ImageValidationReport
    return ImageValidationReport
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
