/*
 * graph.c - what every part of the graph module shares: edge types, the
 * delta of a change and its `graph.updated` event.
 */
#include "graph/graph.h"

#include "core/err.h"
#include "events/events.h"
#include "services/jobs/jobs.h"

#include <string.h>

const char *const graph_edge_types[] = {"related", "is_a",       "part_of",     "causes",
                                        "uses",    "example_of", "opposite_of", NULL};

bool graph_edge_type_valid(const char *type)
{
    for (size_t i = 0; type && graph_edge_types[i]; i++)
        if (strcmp(type, graph_edge_types[i]) == 0)
            return true;
    return false;
}

void graph_delta_init(struct graph_delta *d)
{
    d->nodes = json_array();
    d->edges = json_array();
    d->removed_nodes = json_array();
    d->removed_edges = json_array();
    d->embed_ids = json_array();
}

void graph_delta_release(struct graph_delta *d)
{
    json_decref(d->nodes);
    json_decref(d->edges);
    json_decref(d->removed_nodes);
    json_decref(d->removed_edges);
    json_decref(d->embed_ids);
    memset(d, 0, sizeof(*d));
}

bool graph_delta_is_empty(const struct graph_delta *d)
{
    return json_array_size(d->nodes) == 0 && json_array_size(d->edges) == 0 &&
           json_array_size(d->removed_nodes) == 0 && json_array_size(d->removed_edges) == 0;
}

int graph_delta_add_node(struct db_conn *c, const char *user_id, const char *id,
                         struct graph_delta *d)
{
    json_t *node = NULL;
    int rc = graph_node_json(c, user_id, id, false, &node);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(d->nodes, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0) {
            json_array_set_new(d->nodes, i, node);
            return LOCI_OK;
        }
    }
    json_array_append_new(d->nodes, node);
    return LOCI_OK;
}

int graph_emit(struct db_conn *c, const char *user_id, const struct graph_delta *d,
               const char *reason)
{
    int rc = LOCI_OK;
    if (!graph_delta_is_empty(d)) {
        json_t *data = json_pack("{s:s, s:O, s:O, s:O, s:O}", "reason", reason, "nodes", d->nodes,
                                 "edges", d->edges, "removed_nodes", d->removed_nodes,
                                 "removed_edges", d->removed_edges);
        rc = events_append(c, user_id, "graph.updated", data, NULL);
        json_decref(data);
    }
    if (!rc && json_array_size(d->embed_ids) > 0) {
        json_t *payload = json_pack("{s:O}", "node_ids", d->embed_ids);
        struct jobs_spec spec = {.type = "graph.embed", .payload = payload, .user_id = user_id};
        char job[UUID_STR_LEN];
        rc = jobs_enqueue(c, &spec, job, NULL);
        json_decref(payload);
    }
    return rc;
}
