# The module calls used to be made here, at the root; they are now made by
# modules/stack. These blocks move the existing state to the new addresses, so
# the first plan after the change moves everything and replaces nothing. They
# can go once every environment has been applied with them.

moved {
  from = module.project
  to   = module.cosma.module.project
}

moved {
  from = module.secrets
  to   = module.cosma.module.secrets
}

moved {
  from = module.warehouse
  to   = module.cosma.module.warehouse
}

moved {
  from = module.auth
  to   = module.cosma.module.auth
}

moved {
  from = module.oauth
  to   = module.cosma.module.oauth
}

moved {
  from = module.datasets
  to   = module.cosma.module.datasets
}

moved {
  from = module.query
  to   = module.cosma.module.query
}

moved {
  from = module.sync
  to   = module.cosma.module.sync
}

moved {
  from = module.scheduler
  to   = module.cosma.module.scheduler
}

moved {
  from = module.edge
  to   = module.cosma.module.edge
}
