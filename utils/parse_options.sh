# Kaldi-style option parsing; source it after defining the defaults:
#
#   stage=1          # every option is a shell variable with a default
#   nj=4
#   help_message="Usage: $0 [options] <args>"
#   . utils/parse_options.sh
#
# Then "--name value" or "--name=value" sets the variable "name" (dashes become underscores) only if
# it is already defined; an undefined name is an error. A variable whose default is true/false only
# takes true/false. "--config FILE" sources FILE (lines "name=value"). "--help" / "-h" prints
# $help_message and exits 0. Parsing stops at "--" or at the first argument that is not an option;
# the options are shifted away from the caller's "$@" (this file is sourced, so "shift" acts there).

__po_die() {
  echo "${0##*/}: $*" >&2
  [ -n "${help_message:-}" ] && echo "(run ${0##*/} --help for the usage)" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message"; else echo "Usage: ${0##*/} [options]"; fi
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      __po_name="${1%%=*}"
      __po_value="${1#*=}"
      shift
      ;;
    --?*)
      __po_name="$1"
      [ $# -ge 2 ] || __po_die "option $1 needs a value"
      __po_value="$2"
      shift 2
      ;;
    *)
      break
      ;;
  esac
  __po_name="${__po_name#--}"
  __po_name="${__po_name//-/_}"
  if [[ ! "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    __po_die "invalid option --${__po_name}"
  fi
  if [ "$__po_name" = config ] && [[ ! -v config ]]; then
    [ -r "$__po_value" ] || __po_die "--config: cannot read file '$__po_value'"
    # shellcheck disable=SC1090
    . "$__po_value"
    continue
  fi
  if [[ ! -v $__po_name ]]; then
    __po_die "unknown option --${__po_name} (no such setting in this script; see --help)"
  fi
  case "${!__po_name}" in
    true | false)
      case "$__po_value" in
        true | false) ;;
        *) __po_die "option --${__po_name} takes true or false, got '$__po_value'" ;;
      esac
      ;;
  esac
  printf -v "$__po_name" '%s' "$__po_value"
done
unset __po_name __po_value
unset -f __po_die
true
