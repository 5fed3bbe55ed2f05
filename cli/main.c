/* tally: the command line of the compute-leasing network (cli/commands.c). */
#include "cli/tally.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
