"""`python -m archviz`."""

from archviz.cli import main

main()
