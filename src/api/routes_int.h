/*
 * routes_int.h - private to src/api: the handlers the route table names.
 */
#ifndef LOCI_API_ROUTES_INT_H
#define LOCI_API_ROUTES_INT_H

#include "api/http.h"

int api_health(struct http_req *req);
int api_health_detailed(struct http_req *req);
int api_metrics(struct http_req *req);
int api_version(struct http_req *req);
int api_openapi(struct http_req *req);

#endif
