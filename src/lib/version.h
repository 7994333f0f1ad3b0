/* version: the engine's version string. */
#ifndef FUGLU_VERSION_H
#define FUGLU_VERSION_H
#define FUGLU_VERSION "0.1.0"
#endif
