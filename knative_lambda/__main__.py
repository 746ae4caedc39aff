from knative_lambda.cli import main

main()
