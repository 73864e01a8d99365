from manage_migrations.cli import main

main()
