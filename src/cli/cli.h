/* cli.h -- the subcommands of the `bellows` binary, one function each.
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and
 * returns the process exit status. They print to stdout/stderr and may exit(). */
#ifndef BELLOWS_CLI_H
#define BELLOWS_CLI_H

int cli_generate(int argc, char **argv);
int cli_runner(int argc, char **argv);
int cli_serve(int argc, char **argv);

#endif
