#!/usr/bin/env bash
# deploy.sh: stage, migrate and deploy genmedia's three Cloud Functions (gen2) to one environment.
#
# Terraform (infra/, `make tf ENV=<env>`) builds the platform first: APIs, service accounts, Cloud
# SQL, the DB password and API key pepper secrets, Pub/Sub topics, the bucket, the scheduler job.
# This script then ships the code, reading the same infra/environments/<env>.tfvars. Secrets reach
# the functions only as Secret Manager references (--set-secrets). See docs/deployment.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly ROOT
readonly PYTHON="${ROOT}/.venv/bin/python"
# Consumers before producers: batch must understand a new message before anyone publishes one.
readonly FUNCTIONS=(batch generation scheduling)
readonly PUBSUB_MAX_ACK_DEADLINE=600
# deploy_config.py leaves this placeholder in SCHEDULER_AUDIENCE; the project number replaces it.
readonly PROJECT_NUMBER_PLACEHOLDER=PROJECT_NUMBER

ENV_NAME="dev"
ONLY=""
DRY_RUN=false
STAGE_DIR=""
CONFIG_FILE=""
DB_PASSWORD=""
PROJECT_NUMBER=""
declare -A CFG=()

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--env ENV] [--only FUNCTION] [--dry-run] [--stage-dir DIR] [--config FILE]

Deploy the generation, batch and scheduling functions (Cloud Functions gen2) to ENV.

  --env ENV          environment: infra/environments/ENV.tfvars (default: dev)
  --only FUNCTION    deploy one function: generation, batch or scheduling
  --dry-run          print every gcloud, make and database command; run none of them
                     (the packages are still staged locally, to check them)
  --stage-dir DIR    stage the packages into DIR (new or empty) and keep them
  --config FILE      read the settings from FILE instead of infra/environments/ENV.tfvars

Steps: read and check the settings (every rule Terraform applies, and the pool budget), stage each
function's package (main.py at its root, its folder, shared/, requirements.txt), look up the project
number (scheduling's SCHEDULER_AUDIENCE and batch's Pub/Sub agent need it), check that nothing will
publish before batch's subscription dead-letters, migrate the database, then per function in the
order batch, generation, scheduling: deploy it (API_KEY_PEPPER at its pinned version and, without
IAM database auth, DB_PASS as Secret Manager references), make its invokers exactly allUsers
(generation, scheduling) or the Eventarc identity (batch), and give batch's trigger subscription
its retry and dead-letter policy before any producer is deployed.

Environment: MIGRATION_DATABASE_URL, when set, is the database URL migrations use (e.g. through the
Cloud SQL Auth Proxy); otherwise they go through the Cloud SQL connector as the owner user, with
its password read from Secret Manager. MAKE overrides the make command.
EOF
}

die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}

note() {
  printf '==> %s\n' "$*" >&2
}

# A command as one shell-readable line; only words that need it are quoted.
format_command() {
  local word out=""
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then
      out+="${word} "
    else
      out+="'${word//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}

# Run a command, or in a dry run print it (on the script's stdout) and run nothing.
run() {
  if "$DRY_RUN"; then
    printf '%s\n' "$(format_command "$@")" >&3
    return 0
  fi
  printf '+ %s\n' "$(format_command "$@")" >&2
  "$@"
}

# Print the output of a read-only lookup; in a dry run print the command and a placeholder instead.
query() {
  local placeholder="$1"
  shift
  if "$DRY_RUN"; then
    printf '%s\n' "$(format_command "$@")" >&3
    printf '%s\n' "$placeholder"
    return 0
  fi
  printf '+ %s\n' "$(format_command "$@")" >&2
  "$@"
}

is_function() {
  local fn
  for fn in "${FUNCTIONS[@]}"; do
    [[ $fn == "$1" ]] && return 0
  done
  return 1
}

parse_args() {
  while (($# > 0)); do
    case "$1" in
      --env) (($# >= 2)) || die "--env needs a value (dev, prod, ...)"; ENV_NAME="$2"; shift 2 ;;
      --env=*) ENV_NAME="${1#*=}"; shift ;;
      --only) (($# >= 2)) || die "--only needs a function: generation, batch or scheduling"; ONLY="$2"; shift 2 ;;
      --only=*) ONLY="${1#*=}"; shift ;;
      --dry-run) DRY_RUN=true; shift ;;
      --stage-dir) (($# >= 2)) || die "--stage-dir needs a directory"; STAGE_DIR="$2"; shift 2 ;;
      --stage-dir=*) STAGE_DIR="${1#*=}"; shift ;;
      --config) (($# >= 2)) || die "--config needs a tfvars file"; CONFIG_FILE="$2"; shift 2 ;;
      --config=*) CONFIG_FILE="${1#*=}"; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument '$1' (see ./deploy.sh --help)" ;;
    esac
  done
  [[ $ENV_NAME =~ ^[a-z][a-z0-9_-]*$ ]] || die "--env must be an environment name such as dev or prod"
  if [[ -n $ONLY ]] && ! is_function "$ONLY"; then
    die "--only must be generation, batch or scheduling, not '${ONLY}'"
  fi
  CONFIG_FILE="${CONFIG_FILE:-${ROOT}/infra/environments/${ENV_NAME}.tfvars}"
}

require_python() {
  [[ -x $PYTHON ]] || die "${PYTHON} is missing: run 'make install' first"
  "$PYTHON" -c 'import hcl2' 2>/dev/null || die "python-hcl2 is not installed in .venv: run 'make install'"
}

# gcloud, make and credentials; checked after the settings, so a bad config never reaches gcloud.
require_cloud_tools() {
  "$DRY_RUN" && return 0
  command -v gcloud >/dev/null || die "gcloud is not installed: https://cloud.google.com/sdk/docs/install"
  command -v "${MAKE:-make}" >/dev/null || die "make is not installed"
  gcloud auth print-access-token >/dev/null 2>&1 || die "gcloud has no active credentials: run 'gcloud auth login'"
  if [[ -z ${MIGRATION_DATABASE_URL:-} ]]; then
    gcloud auth application-default print-access-token >/dev/null 2>&1 ||
      die "migrations need application default credentials: run 'gcloud auth application-default login'"
  fi
}

# Read the environment through infra/scripts/deploy_config.py, which also applies the pool budget.
load_config() {
  local output line
  output="$("$PYTHON" "${ROOT}/infra/scripts/deploy_config.py" "$CONFIG_FILE" "$ENV_NAME")" || exit 1
  while IFS= read -r line; do
    CFG["${line%%=*}"]="${line#*=}"
  done <<<"$output"
}

# The functions this run deploys, in deploy order.
TARGETS=()
select_functions() {
  if [[ -n $ONLY ]]; then
    TARGETS=("$ONLY")
  else
    TARGETS=("${FUNCTIONS[@]}")
  fi
}

# What Cloud Build sees for one function: main.py at the root (what the runtime loads), the function's
# folder as the package functions/<fn>/ (so `from functions.<fn> import service` resolves), shared/
# and requirements.txt. No other function is copied, so importing one fails here, not in production.
stage_function() {
  local fn="$1" dest="$2" src="${ROOT}/functions/$1"
  [[ -f ${src}/main.py ]] || die "functions/${fn}/main.py is missing"
  mkdir -p "${dest}/functions"
  cp "${src}/main.py" "${dest}/main.py"
  cp "${ROOT}/functions/__init__.py" "${dest}/functions/__init__.py" 2>/dev/null ||
    printf '"""The one function staged here."""\n' >"${dest}/functions/__init__.py"
  cp -R "$src" "${dest}/functions/${fn}"
  cp -R "${ROOT}/shared" "${dest}/shared"
  cp "${ROOT}/requirements.txt" "${dest}/requirements.txt"
  find "$dest" \( -name __pycache__ -o -name '*.pyc' -o -name '.*_cache' \) -prune -exec rm -rf {} +
  printf '%s\n' "# Staged by deploy.sh: upload everything but caches." ".gcloudignore" "__pycache__/" "*.pyc" \
    >"${dest}/.gcloudignore"
}

stage_packages() {
  local fn
  if [[ -n $STAGE_DIR ]]; then
    if [[ -e $STAGE_DIR && -n "$(ls -A "$STAGE_DIR")" ]]; then
      die "--stage-dir ${STAGE_DIR} is not empty"
    fi
    mkdir -p "$STAGE_DIR"
    STAGE_DIR="$(cd "$STAGE_DIR" && pwd)"
  else
    STAGE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/genmedia-deploy.XXXXXX")"
    trap 'rm -rf "$STAGE_DIR"' EXIT
  fi
  for fn in "${TARGETS[@]}"; do
    stage_function "$fn" "${STAGE_DIR}/${fn}"
  done
  note "staged packages in ${STAGE_DIR}"
}

# Run "$@" with the migration connection in its environment, never on its command line.
# The printed line names the secret variables instead of showing their values.
# shellcheck disable=SC2016
with_migration_db() {
  local -a shown=(env -u DATABASE_URL)
  if [[ -n ${MIGRATION_DATABASE_URL:-} ]]; then
    shown+=('DATABASE_URL=$MIGRATION_DATABASE_URL')
  else
    shown+=("INSTANCE_CONNECTION_NAME=${CFG[name.instance_connection_name]}" "DB_USER=${CFG[name.db_owner_user]}"
      "DB_NAME=${CFG[name.database]}" DB_IAM_AUTH=false 'DB_PASS=$DB_PASS')
  fi
  if "$DRY_RUN"; then
    printf '%s\n' "$(format_command "${shown[@]}" "$@")" >&3
    return 0
  fi
  printf '+ %s\n' "$(format_command "${shown[@]}" "$@")" >&2
  (
    unset DATABASE_URL DB_PASS DB_IAM_AUTH INSTANCE_CONNECTION_NAME
    if [[ -n ${MIGRATION_DATABASE_URL:-} ]]; then
      export DATABASE_URL="$MIGRATION_DATABASE_URL"
    else
      export INSTANCE_CONNECTION_NAME="${CFG[name.instance_connection_name]}" DB_USER="${CFG[name.db_owner_user]}"
      export DB_NAME="${CFG[name.database]}" DB_IAM_AUTH=false DB_PASS="$DB_PASSWORD"
    fi
    "$@"
  )
}

# The project number: part of the scheduling function's URL, which is the audience of Cloud
# Scheduler's OIDC token (SCHEDULER_AUDIENCE), and of the Pub/Sub service agent's email.
lookup_project_number() {
  local fn needed=false
  for fn in "${TARGETS[@]}"; do
    [[ $fn == batch || $fn == scheduling ]] && needed=true
  done
  "$needed" || return 0
  PROJECT_NUMBER="$(query "$PROJECT_NUMBER_PLACEHOLDER" gcloud projects describe "${CFG[project_id]}" \
    --format='value(projectNumber)')"
  if ! "$DRY_RUN" && [[ ! $PROJECT_NUMBER =~ ^[0-9]+$ ]]; then
    die "could not read the number of project ${CFG[project_id]} (got '${PROJECT_NUMBER}')"
  fi
}

# Migrations run before any function is deployed, so no new code meets an old schema; they must stay
# backwards compatible with the code still serving until its deploy finishes (expand, then contract).
migrate_database() {
  note "migrating ${CFG[name.instance_connection_name]} (before any function switches traffic)"
  if [[ -z ${MIGRATION_DATABASE_URL:-} ]]; then
    DB_PASSWORD="$(query 'DB_PASS' gcloud secrets versions access latest \
      --secret="${CFG[name.db_password_secret]}" --project="${CFG[project_id]}")"
    [[ -n $DB_PASSWORD ]] || die "secret ${CFG[name.db_password_secret]} is empty: run terraform apply first"
  fi
  with_migration_db "${MAKE:-make}" -C "$ROOT" migrate
  if [[ ${CFG[db_iam_auth]} == true ]]; then
    # The functions' IAM users own nothing: give them DML on the tables the migration may have added.
    # shellcheck disable=SC2086 # db_users is a space-separated list of plain names
    with_migration_db "$PYTHON" "${ROOT}/infra/scripts/grant_db_access.py" ${CFG[db_users]}
  fi
}

deploy_function() {
  local fn="$1" source_dir="$2" at="fn.$1." env_vars
  # Only scheduling's SCHEDULER_AUDIENCE holds the placeholder (same template as Terraform's job).
  env_vars="${CFG[${at}env_vars]//${PROJECT_NUMBER_PLACEHOLDER}/${PROJECT_NUMBER}}"
  local -a cmd=(
    gcloud functions deploy "${CFG[${at}name]}"
    --gen2
    --project="${CFG[project_id]}"
    --region="${CFG[region]}"
    --runtime="${CFG[runtime]}"
    --source="$source_dir"
    --entry-point="$fn"
    --service-account="${CFG[sa.${fn}]}"
    --build-service-account="projects/${CFG[project_id]}/serviceAccounts/${CFG[sa.builder]}"
    --set-env-vars="$env_vars"
    --memory="${CFG[${at}memory]}"
    --cpu="${CFG[${at}cpu]}"
    --timeout="${CFG[${at}timeout]}"
    --min-instances="${CFG[${at}min_instances]}"
    --max-instances="${CFG[${at}max_instances]}"
    --concurrency="${CFG[${at}concurrency]}"
    --ingress-settings="${CFG[${at}ingress]}"
  )
  if [[ -n ${CFG[${at}secrets]} ]]; then
    cmd+=(--set-secrets="${CFG[${at}secrets]}")
  else
    cmd+=(--clear-secrets)
  fi
  if [[ $fn == batch ]]; then
    cmd+=(--trigger-topic="${CFG[name.batch_topic]}" --trigger-location="${CFG[region]}"
      --trigger-service-account="${CFG[sa.eventarc]}" --retry --no-allow-unauthenticated)
  elif [[ ${CFG[${at}public]} == true ]]; then
    cmd+=(--trigger-http --allow-unauthenticated)
  else
    cmd+=(--trigger-http --no-allow-unauthenticated)
  fi
  note "deploying ${fn} as ${CFG[${at}name]}"
  run "${cmd[@]}" --quiet
}

# Who may invoke each function on Cloud Run (roles/run.invoker), and no one else. generation and
# scheduling: everyone, because they authenticate every /v1 route themselves (API keys, and Cloud
# Scheduler's OIDC token on :tick), and because download and upload URLs must work with no
# credentials at all. batch: only its Eventarc trigger's identity.
invokers_of() {
  if [[ $1 == batch ]]; then
    printf '%s\n' "serviceAccount:${CFG[sa.eventarc]}"
  else
    printf '%s\n' allUsers
  fi
}

has_word() {
  local needle="$1" word
  shift
  for word in "$@"; do
    [[ $word == "$needle" ]] && return 0
  done
  return 1
}

# Make roles/run.invoker on the function's Cloud Run service exactly invokers_of: add what is missing
# and remove every other member, so a principal granted once (by hand, or by an older release that
# had invoker_members) does not keep its access.
reconcile_invokers() {
  local fn="$1" name="${CFG[fn.${1}.name]}" project="${CFG[project_id]}" region="${CFG[region]}"
  local service listed member
  local -a wanted=() current=()
  mapfile -t wanted < <(invokers_of "$fn")
  service="$(query "${name}" gcloud functions describe "$name" --project="$project" --region="$region" \
    --format='value(serviceConfig.service)')"
  [[ -n $service ]] || die "could not find the Cloud Run service of ${name}"
  listed="$(query '' gcloud run services get-iam-policy "${service##*/}" --project="$project" --region="$region" \
    --flatten='bindings[].members' --filter='bindings.role=roles/run.invoker' --format='value(bindings.members)')"
  mapfile -t current < <(printf '%s\n' "$listed" | sed '/^$/d')
  for member in "${wanted[@]}"; do
    has_word "$member" "${current[@]}" || run gcloud functions add-invoker-policy-binding "$name" \
      --project="$project" --region="$region" --member="$member"
  done
  for member in "${current[@]}"; do
    has_word "$member" "${wanted[@]}" || run gcloud functions remove-invoker-policy-binding "$name" \
      --project="$project" --region="$region" --member="$member"
  done
}

# The Pub/Sub subscription that feeds batch: Eventarc makes it when the function is deployed.
batch_subscription() {
  local project="${CFG[project_id]}" region="${CFG[region]}" trigger subscription
  trigger="$(query '<trigger of the batch function>' gcloud functions describe "${CFG[fn.batch.name]}" \
    --project="$project" --region="$region" --format='value(eventTrigger.trigger)')" ||
    die "could not describe ${CFG[fn.batch.name]}: deploy batch first (./deploy.sh --env ${ENV_NAME} --only batch)"
  subscription="$(query '<subscription of the batch trigger>' gcloud eventarc triggers describe "$trigger" \
    --project="$project" --location="$region" --format='value(transport.pubsub.subscription)')"
  [[ -n $subscription ]] || die "could not find the subscription of the batch trigger ${trigger}"
  printf '%s\n' "$subscription"
}

# The subscription belongs to the Eventarc trigger, so it is configured here rather than in
# Terraform: retries with backoff, and after max_delivery_attempts the dead-letter topic.
configure_batch_subscription() {
  local project="${CFG[project_id]}" subscription ack timeout
  subscription="$(batch_subscription)"
  # Pub/Sub must not redeliver while the function may still be working on the message.
  timeout="${CFG[fn.batch.timeout]%s}"
  ack=$((timeout + 60 > PUBSUB_MAX_ACK_DEADLINE ? PUBSUB_MAX_ACK_DEADLINE : timeout + 60))
  run gcloud pubsub subscriptions update "$subscription" --project="$project" \
    --ack-deadline="$ack" --min-retry-delay=10s --max-retry-delay=600s \
    --dead-letter-topic="$(dead_letter_topic)" --max-delivery-attempts="${CFG[max_delivery_attempts]}"
  # Pub/Sub's own agent (Terraform creates it: google_project_service_identity) moves messages to the
  # dead-letter topic; it must be able to ack them here.
  run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$project" \
    --member="serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" \
    --role=roles/pubsub.subscriber
}

dead_letter_topic() {
  printf 'projects/%s/topics/%s\n' "${CFG[project_id]}" "${CFG[name.dead_letter_topic]}"
}

# generation and scheduling publish to the batch topic. A message published while no subscription
# exists is lost, and one delivered before the dead-letter policy is set is retried without backoff:
# so a producer is deployed only after batch's subscription dead-letters. A full deploy configures it
# first (batch is deployed first); a deploy of a producer alone checks it, before anything changes.
require_configured_batch_subscription() {
  has_word batch "${TARGETS[@]}" && return 0
  has_word generation "${TARGETS[@]}" || has_word scheduling "${TARGETS[@]}" || return 0
  local subscription topic
  subscription="$(batch_subscription)"
  topic="$(query "$(dead_letter_topic)" gcloud pubsub subscriptions describe "$subscription" \
    --project="${CFG[project_id]}" --format='value(deadLetterPolicy.deadLetterTopic)')"
  [[ $topic == "$(dead_letter_topic)" ]] ||
    die "batch's subscription ${subscription} does not dead-letter to $(dead_letter_topic) yet: deploy batch first (./deploy.sh --env ${ENV_NAME} --only batch)"
}

main() {
  exec 3>&1
  parse_args "$@"
  select_functions
  require_python
  load_config
  require_cloud_tools
  local total="${ONLY:-all three functions}" fn
  if "$DRY_RUN"; then
    note "dry run for ${ENV_NAME} (${CFG[project_id]}): ${total}; printing commands, running none"
  else
    note "deploying ${total} to ${ENV_NAME} (${CFG[project_id]})"
  fi
  stage_packages
  lookup_project_number
  require_configured_batch_subscription
  migrate_database
  for fn in "${TARGETS[@]}"; do
    deploy_function "$fn" "${STAGE_DIR}/${fn}"
    reconcile_invokers "$fn"
    if [[ $fn == batch ]]; then
      configure_batch_subscription
    fi
  done
  note "done: ${ENV_NAME}"
}

main "$@"
