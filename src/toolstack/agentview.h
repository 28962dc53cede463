/* agentview: the guest agent's state as shojid shows it (shoji info), rebuilt from what a VM's
 * monitor reports in its status (see agentview.c). Pure; any thread. */
#ifndef SHOJI_TOOLSTACK_AGENTVIEW_H
#define SHOJI_TOOLSTACK_AGENTVIEW_H

#include <json-c/json.h>

/* A checked copy of status's "agent" object (a monitor's status reply), or NULL when it has
 * none or its state is not one of none/connecting/ready/unresponsive. */
struct json_object *agent_view(struct json_object *status);

#endif
