"""``python -m omniretrieve.cli``."""

from omniretrieve.cli import main

main()
