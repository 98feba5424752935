from rawcore.cli import main

main()
