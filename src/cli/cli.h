/* cli.h -- the subcommands of the `bellows` binary, one function each.
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and
 * returns the process exit status. They print to stdout/stderr and may exit(). */
#ifndef BELLOWS_CLI_H
#define BELLOWS_CLI_H

int cli_generate(int argc, char **argv);

/* The client commands (run.c, models.c): they talk to `bellows serve` at BELLOWS_HOST
 * (cli/client.h), starting one in the background when none answers (not for ps, stop). */
int cli_run(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_ps(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_create(int argc, char **argv);
int cli_pull(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_cp(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_cache(int argc, char **argv); /* cache.c: the saved KV states (list / clear) */
int cli_version(int argc, char **argv); /* the client's version, as `bellows --version` */
int cli_runner(int argc, char **argv);
int cli_rpc_server(int argc, char **argv); /* rpc_server.c: ggml's RPC server (issue 16) */
int cli_serve(int argc, char **argv);

#endif
