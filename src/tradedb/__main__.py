from tradedb.cli.app import main

main()
