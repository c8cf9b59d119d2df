/*
 * main.c: command line. Exit codes:
 *   0  clean exit (after a SIGTERM/SIGINT drain, or a successful --check-config/--migrate/...)
 *   1  runtime failure (cannot listen, a worker failed, migration failed)
 *   2  usage error (bad command line)
 *   3  configuration error (the message names file:line)
 */
#include <getopt.h>
#include <malloc.h>

#include "core/common.h"
#include "core/json.h"
#include "core/log.h"
#include "db/migrate.h"
#include "server.h"
#include "settings.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3 };

static void usage(FILE *out)
{
    fprintf(out, "Usage: ledgerd -c FILE [--check-config | --print-config | --migrate]\n"
                 "       ledgerd --version | --help\n"
                 "\n"
                 "  -c, --config FILE   configuration file (INI; see conf/ledger.ini)\n"
                 "  -t, --check-config  parse and validate the configuration, then exit\n"
                 "  -p, --print-config  print the effective configuration (secrets masked), then exit\n"
                 "  -m, --migrate       create the databases if needed, apply pending schema\n"
                 "                      migrations ([server] schema_dir), then exit\n"
                 "  -V, --version       print the version\n"
                 "  -h, --help          this text\n"
                 "\n"
                 "Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 configuration error.\n"
                 "SIGTERM/SIGINT drain in-flight requests, then exit 0.\n");
}

static int migrate(const struct ldg_config *c)
{
    char auth_dir[4096], logs_dir[4096];
    snprintf(auth_dir, sizeof auth_dir, "%s/auth", c->server.schema_dir);
    snprintf(logs_dir, sizeof logs_dir, "%s/logs", c->server.schema_dir);
    if (ldg_migrate_run(&c->pg_auth, c->pg_auth_password, auth_dir, "auth") < 0)
        return EXIT_RUNTIME;
    /* Every logs shard gets the same schema (replicas follow their primary by themselves). */
    for (int i = 0; i < c->npg_shards; i++) {
        char label[16];
        snprintf(label, sizeof label, i ? "logs.%d" : "logs", i);
        if (ldg_migrate_run(ldg_settings_pg_shard(c, i), ldg_settings_pg_shard_password(c, i), logs_dir,
                            label) < 0 ||
            ldg_migrate_id_space(ldg_settings_pg_shard(c, i), ldg_settings_pg_shard_password(c, i), i) < 0)
            return EXIT_RUNTIME;
    }
    return 0;
}

/*
 * Ingestion allocates and frees blocks of up to a few MB many times a second (request bodies,
 * encoded batches, Redis commands). With glibc's defaults such blocks are mmap()ed or trimmed
 * back to the kernel on free, so every request page-faults them in again (measured: ~10% of the
 * ingest CPU). Serve them from the heap and keep up to 64 MB free per arena instead.
 */
static void keep_freed_memory(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"print-config", no_argument, NULL, 'p'},
        {"migrate", no_argument, NULL, 'm'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int mode = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:tpmVh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
        case 'p':
        case 'm':
            if (mode && mode != opt) {
                fprintf(stderr, "ledgerd: --check-config, --print-config and --migrate exclude each other\n");
                return EXIT_USAGE;
            }
            mode = opt;
            break;
        case 'V':
            printf("ledgerd %s\n", LDG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || !path) {
        fprintf(stderr, "ledgerd: %s\n", path ? "unexpected argument" : "missing -c FILE");
        usage(stderr);
        return EXIT_USAGE;
    }

    ldg_json_init();
    struct ldg_config cfg;
    struct ldg_cfg_err err = {{0}};
    if (ldg_settings_load_mode(&cfg, path, mode == 't' || mode == 'p', &err) < 0) {
        fprintf(stderr, "ledgerd: configuration error: %s\n", err.msg);
        ldg_settings_free(&cfg);
        return EXIT_CONFIG;
    }
    ldg_log_configure((enum ldg_log_level)cfg.log.level, (enum ldg_log_format)cfg.log.format);
    ldg_log_set_node(cfg.node.name);

    int rc = 0;
    if (mode == 't') {
        printf("%s: configuration ok\n", path);
    } else if (mode == 'p') {
        ldg_settings_dump(&cfg, stdout);
    } else if (mode == 'm') {
        rc = migrate(&cfg);
    } else {
        keep_freed_memory();
        /* The thread pool is created on first use; size it before anything can use it. */
        char n[16];
        snprintf(n, sizeof n, "%lld", (long long)cfg.server.threadpool_size);
        setenv("UV_THREADPOOL_SIZE", n, 1);
        rc = ldg_server_run(&cfg);
    }
    ldg_settings_free(&cfg);
    return rc;
}
