"""``python -m chatbot.cli``: the same as the ``chatbot`` command."""

from chatbot.cli import main

main()
