"""Console-script entry points (pyproject `[project.scripts]`) for the modules whose commands
define their flags under `__main__`: each does what `python -m ssl_seg.<module>` does."""

from absl import app

from ssl_seg import config_utils


def predict():
  from ssl_seg import predict as module
  module.define_flags()
  app.run(module.main, flags_parser=config_utils.parse_flags)


def evaluate():
  from ssl_seg import evaluate as module
  module.define_flags()
  app.run(module.main, flags_parser=config_utils.parse_flags)
