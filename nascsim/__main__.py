from nascsim.cli import main

main()
