export { checkGroupCount, checkGroupName, MAX_GROUP_COUNT, MAX_GROUP_NAME, memberIndex, memberName } from './group-names.js'
export { decideReconcile, type ObservedMember, type ReconcileDecision } from './reconcile-decision.js'
export { GroupInputError } from './errors.js'
