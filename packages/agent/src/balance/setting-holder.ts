import type { BalanceMode, BalanceSetting } from '@meshvirt/mesh'
import type { StateStore } from '../store/state-store.js'
import { BALANCE_MODES, DEFAULT_BALANCE_SETTING, isNewerSetting } from './balance-setting.js'

const META_KEY = 'balance.setting'

/**
 * The cluster's balancing setting as this host follows it, kept in its store so a restarted host
 * (or a whole cluster restarted) keeps it; a newer one from any advert replaces it.
 */
export class BalanceSettingHolder {
  private value: BalanceSetting

  constructor (private readonly store: Pick<StateStore, 'getMeta' | 'setMeta'>, private readonly onChange: (s: BalanceSetting) => void) {
    this.value = parseSetting(store.getMeta(META_KEY)) ?? { ...DEFAULT_BALANCE_SETTING }
  }

  get current (): BalanceSetting {
    return this.value
  }

  /** Takes `s` when it is newer; answers whether it did. */
  offer (s: BalanceSetting | undefined): boolean {
    if (s === undefined || !isNewerSetting(s, this.value)) return false
    this.value = { ...s }
    this.store.setMeta(META_KEY, JSON.stringify(this.value))
    this.onChange(this.value)
    return true
  }
}

function parseSetting (raw: string | undefined): BalanceSetting | undefined {
  if (raw === undefined) return undefined
  try {
    const v = JSON.parse(raw) as Partial<BalanceSetting>
    if (!BALANCE_MODES.includes(v.mode as BalanceMode) || typeof v.version !== 'number' || typeof v.setBy !== 'string') return undefined
    return { mode: v.mode as BalanceMode, version: v.version, setBy: v.setBy }
  } catch {
    return undefined
  }
}
