#!/bin/sh
echo "x.sh in $(basename "$PWD") FOO=$FOO CALLER=$CALLER JOBVAR=$JOBVAR action_path=$GITHUB_ACTION_PATH" >> "$GITHUB_WORKSPACE/log.txt"
