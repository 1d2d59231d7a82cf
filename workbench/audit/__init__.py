"""What a model memorized, what private data its corpus held, and how it treats the people a text is about.

Like `probe/`, the audit reads run folders, checkpoints and models and never trains: every number it
reports is a measurement of weights that already exist, written to the audited run's `audit.json`
and its model card.
"""
