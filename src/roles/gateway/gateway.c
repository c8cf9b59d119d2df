/* gateway.c: placeholder until the gateway lands. */
#include "roles/role.h"

static const struct ldg_cfg_key gateway_keys[] = {{0}};
const struct ldg_role ldg_role_gateway = {.name = "gateway", .keys = gateway_keys, .cfg_size = 0};
