from wideseek.cli import main

main()
