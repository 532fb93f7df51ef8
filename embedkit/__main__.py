"""``python -m embedkit`` runs the CLI."""
from embedkit.cli import main

main()
