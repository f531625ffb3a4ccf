/* main.c -- the `bellows` binary: subcommand dispatch, --version, --help.
 * Subcommands that are not built yet say so and exit 2; none pretends to work. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"
#include "version.h"

struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* NULL: not built yet */
};

static const struct subcommand subcommands[] = {
    {"serve", "Start the server (Ollama- and OpenAI-compatible HTTP API)", cli_serve},
    {"run", "Chat with a model, or answer one prompt", cli_run},
    {"list", "List the models in the store", cli_list},
    {"ps", "List the loaded models, with their context pools", cli_ps},
    {"show", "Show a model's details", cli_show},
    {"create", "Create a model from a Modelfile", cli_create},
    {"pull", "Pull a model from a registry (Ollama's, Hugging Face, your own)", cli_pull},
    {"rm", "Remove a model", cli_rm},
    {"cp", "Copy a model", cli_cp},
    {"stop", "Unload a running model", cli_stop},
    {"cache", "List or clear the conversations' KV states saved to disk", cli_cache},
    {"rpc-server", "Serve this machine's devices to a Bellows server elsewhere (BELLOWS_RPC)", cli_rpc_server},
    {"version", "Print the version", cli_version /* main() answers first, with the same text */},
    {"generate", "Generate from a GGUF file in this process, no server (for developers)", cli_generate},
    {"runner", "Internal: serve one model to the server over a socket", cli_runner},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void print_version(void)
{
    printf("bellows version %s (llama.cpp %.7s)\n", BELLOWS_VERSION, BELLOWS_LLAMA_COMMIT);
}

static void print_help(FILE *f)
{
    fprintf(f, "Bellows: a local LLM server whose context window breathes.\n\n"
               "Usage:\n  bellows [flags]\n  bellows <command> [args]\n\nCommands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(f, "  %-10s %s%s\n", subcommands[i].name, subcommands[i].summary,
                subcommands[i].run ? "" : " (not built yet)");
    fprintf(f, "\nFlags:\n  -h, --help      help for bellows\n  -v, --version   show the version\n\n"
               "Use \"bellows <command> --help\" for more about a command.\n");
}

int main(int argc, char **argv)
{
    log_init_from_env();
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(cmd, "-v") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        print_version();
        return 0;
    }
    for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
        if (strcmp(cmd, subcommands[i].name) != 0)
            continue;
        if (!subcommands[i].run) {
            fprintf(stderr, "bellows: '%s' is not built yet in this version (%s)\n", cmd, BELLOWS_VERSION);
            return 2;
        }
        return subcommands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "bellows: unknown command '%s'\nRun 'bellows --help' for the list of commands.\n", cmd);
    return 2;
}
