from roadmap_worker_content.main import main

main()
