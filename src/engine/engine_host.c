/*
 * The reference engine as a jm_host: the vtable the built-in executors
 * call. Each operation lives with its concern (engine_flush.c,
 * engine_purge.c, ...); this file only wires them up.
 */
#include "engine_internal.h"

void jm__eng_host_init(jm_engine *e)
{
    e->host = (jm_host){
        .version = JM_HOST_VERSION,
        .self = e,
        .table_info = jm__eng_host_table_info,
        .flush = jm__eng_host_flush,
        .purge = jm__eng_host_purge,
        .list_segments = jm__eng_host_list_segments,
        .free_segments = jm__eng_host_free_segments,
        .merge_segments = jm__eng_host_merge_segments,
        .drop_table = jm__eng_host_drop_table,
        .user_info = jm__eng_host_user_info,
        .user_tables = jm__eng_host_user_tables,
        .remove_user_acl = jm__eng_host_remove_user_acl,
        .remove_user_live_queries = jm__eng_host_remove_user_live_queries,
        .delete_user = jm__eng_host_delete_user,
        .export_table = jm__eng_host_export_table,
        .import_begin = jm__eng_host_import_begin,
        .import_rows = jm__eng_host_import_rows,
        .import_commit = jm__eng_host_import_commit,
        .import_abort = jm__eng_host_import_abort,
        .list_tables = jm__eng_host_list_tables,
        .table_figures = jm__eng_host_table_figures,
    };
}
