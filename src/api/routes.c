/*
 * routes.c - the one route table of the public API. A route not listed here
 * does not exist; tests check this table against the OpenAPI document.
 */
#include "api/app.h"
#include "api/routes_int.h"

const struct http_route api_routes[] = {
    {HTTP_GET, "/health", api_health, 0, 0, NULL, "liveness"},
    {HTTP_GET, "/health/detailed", api_health_detailed, 0, 0, NULL,
     "database, schema and uptime; 503 when the database is down"},
    {HTTP_GET, "/metrics", api_metrics, HTTP_R_NO_LOG, 0, NULL, "Prometheus metrics"},
    {HTTP_GET, "/api/v1/version", api_version, 0, 0, NULL, "server name and version"},
    {HTTP_GET, "/api/v1/openapi.json", api_openapi, 0, 0, NULL, "this API's OpenAPI document"},
};

const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);
