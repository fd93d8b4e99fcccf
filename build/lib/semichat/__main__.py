from semichat.cli import main

main()
