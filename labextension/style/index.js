import './base.css';
import './context.css';
import './answer.css';
import './indexstatus.css';
import './cellreview.css';
import './kernelanswer.css';
import './agent.css';
import './completion.css';
