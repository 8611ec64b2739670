/*
 * blob_int.h - private to src/services/blob: the backends' tables and
 * constructors.
 */
#ifndef LOCI_SERVICES_BLOB_INT_H
#define LOCI_SERVICES_BLOB_INT_H

#include "services/blob/blob.h"

extern const struct blob_backend blob__local_backend;
/* The local backend's state for directory dir (created when missing). */
int blob__local_open(const char *dir, void **out_impl);

#endif
