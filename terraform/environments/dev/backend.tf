# State of this environment only, in a bucket of its own project (created once
# by hand, with versioning on; see docs/deploy.md). No CLI workspaces.
terraform {
  backend "gcs" {
    bucket = "cosma-dev-tfstate"
    prefix = "cosma/dev"
  }
}
